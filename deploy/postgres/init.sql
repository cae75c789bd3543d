-- Run once by the postgres image on an empty data directory (mounted into /docker-entrypoint-initdb.d).
-- Each service owns one database; none reads another's. The connecting role is POSTGRES_USER,
-- which the image creates, so every database is owned by it. The services create their tables
-- themselves (`python -m <service> migrate`).
CREATE DATABASE referrals;
CREATE DATABASE waitlists;
CREATE DATABASE notifications;
