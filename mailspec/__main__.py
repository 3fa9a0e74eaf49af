from mailspec.cli import main

main()
