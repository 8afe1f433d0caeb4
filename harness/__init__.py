"""The real-server harness: mosquitto, influxd, Kannel and PostgreSQL on free loopback ports, the
examwatch services as child processes, and the kits that drive them. Imported by tests and benches;
it imports nothing from either."""
