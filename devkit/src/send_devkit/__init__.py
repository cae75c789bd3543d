"""Development kit: what `make run`, `make test` and `make bench` use and production images never install."""
