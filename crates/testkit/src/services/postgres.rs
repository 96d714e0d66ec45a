//! A throwaway PostgreSQL cluster on loopback (written with the PostgreSQL store).
