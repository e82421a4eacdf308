from crossship.cli import main

main()
