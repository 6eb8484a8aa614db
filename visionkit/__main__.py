from visionkit.cli import main

main()
