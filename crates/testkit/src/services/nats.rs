//! A throwaway `nats-server` on loopback (written with the cluster messaging).
