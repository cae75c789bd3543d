from waitlists.entrypoints.cli import main

main()
