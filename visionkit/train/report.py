"""The end of a finetune run: save the model with its sidecar, measure every split, diagnose, write the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL_FILE = "model.keras"


def saved_spec(spec, run_dir: Path, input_size, size: int):
    """The spec written beside the model: what ``visionkit classify`` needs to feed it like training did."""
    from visionkit.core.registry import ModelSpec

    return ModelSpec(name=run_dir.name, task="classify", builder="",
                     description=f"{spec.name} fine-tuned by visionkit finetune ({run_dir})",
                     input_size=tuple(input_size), resize=size if size != max(input_size) else None,
                     interpolation=spec.interpolation, license=spec.license)


def split_probabilities(model, head, features: dict, decoded, rows: dict, input_size, batch: int) -> dict:
    """Probabilities for each split; from the cached features through the head when they are still valid."""
    from visionkit.train.evaluate import as_probabilities, predict_batches

    out = {}
    for name, chosen in rows.items():
        if name in features and head is not None:
            out[name] = np.asarray(head(features[name], training=False), np.float32)
        else:
            out[name] = as_probabilities(predict_batches(model, decoded.pixels[chosen], input_size, batch))
    return out


def finish(model, head, features, decoded, rows, names, spec, input_size, size, options, run_dir: Path,
           skipped, batch: int):
    from visionkit.train.diagnosis import diagnose
    from visionkit.train.evaluate import build_report, write_report
    from visionkit.core.model import save_model

    probabilities = split_probabilities(model, head, features, decoded, rows, input_size, batch)
    errors = {}
    for name, chosen in rows.items():
        errors[name.replace("_", "-")] = float(np.mean(probabilities[name].argmax(axis=1) != decoded.labels[chosen]))
    counts = {name.replace("_", "-"): int(len(chosen)) for name, chosen in rows.items()}
    diagnosis = diagnose(errors["train"], errors["dev"], errors.get("train-dev"), options.human_error,
                         errors.get("test"), counts=counts).to_dict()
    final = "test" if "test" in rows else "dev"
    chosen = rows[final]
    report = build_report(str(run_dir / MODEL_FILE), final, [decoded.files[i] for i in chosen], decoded.labels[chosen],
                          probabilities[final], names, options.top_k, skipped, errors, diagnosis)
    extra = {"base": spec.name, "trained_by": "visionkit finetune", "errors": errors,
             "human_error": options.human_error, "data": options.data}
    save_model(model, run_dir / MODEL_FILE, saved_spec(spec, run_dir, input_size, size), names, extra)
    return write_report(report, run_dir)
