from referrals.entrypoints.cli import main

main()
