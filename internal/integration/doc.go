// Package integration tests driftmon against a real Apache Kafka broker: detection and
// alerting end to end, partitioned topics, messages from producers not written in Go
// (kcat's compressed batches, the Python clients of examples/python), a broker restart
// and a consumer-group rebalance.
//
// The tests skip unless DRIFTMON_KAFKA_BROKERS names a broker. .ci/kafka.sh starts one
// (a single KRaft node on 127.0.0.1, fetched through Maven on first use) and prints the
// variable, and DRIFTMON_KAFKA_OAUTH_BROKERS, the same broker's SASL OAUTHBEARER
// listener, which the OAuth tests use (they skip without it):
//
//	export $(.ci/kafka.sh start)
//	DRIFTMON_KAFKA_SCRIPT=$PWD/.ci/kafka.sh go test -race -count=1 ./internal/integration/
//	.ci/kafka.sh stop
//
// or, all in one, make test-kafka. DRIFTMON_KAFKA_SCRIPT lets the restart test stop and
// start the broker itself; without it that test skips. Each test uses its own topics and
// consumer group, so a broker can be reused between runs.
//
// The Python clients of examples/python (producers for JSON, Confluent Avro and Arrow
// IPC, the webhook receiver) run under DRIFTMON_PYTHON, an interpreter with
// examples/python/requirements.txt installed (.ci/run makes a venv); without it they run
// under python3 and skip when it lacks the modules.
//
// It holds tests only: nothing imports it, and its tests drive the packages through
// their exported APIs as a user's program would.
package integration
