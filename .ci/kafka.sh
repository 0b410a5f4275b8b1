#!/usr/bin/env bash
# kafka.sh runs one real Apache Kafka broker (a single KRaft node, broker and controller
# in one JVM) on 127.0.0.1 for driftmon's integration tests (internal/integration).
#
#   .ci/kafka.sh start            fetch Kafka through Maven (once, cached), format storage,
#                                 start the broker, wait until it serves metadata, and
#                                 print DRIFTMON_KAFKA_BROKERS=127.0.0.1:<port> and
#                                 DRIFTMON_KAFKA_OAUTH_BROKERS=127.0.0.1:<oauth port> on
#                                 stdout, one per line
#   .ci/kafka.sh stop             stop the broker and delete its data
#   .ci/kafka.sh stop-keep-data   stop the broker and keep its data: a later start
#                                 brings the same cluster, topics and offsets back
#   .ci/kafka.sh restart          stop-keep-data, then start
#   .ci/kafka.sh status           say whether it runs (exit 0) or not (exit 3)
#
# The broker has two client listeners: PLAINTEXT on KAFKA_PORT, and SASL_PLAINTEXT with
# OAUTHBEARER on KAFKA_OAUTH_PORT for the OAuth tests. The OAUTHBEARER listener checks
# tokens with Kafka's unsecured validator: an unsigned JWS (header {"alg":"none"}) whose
# claims hold a sub, an exp in the future and a scope that includes "kafka". It checks no
# signature: it is for tests on 127.0.0.1 only.
#
# Only Java 17+ and Maven are needed. Progress goes to stderr; stdout carries only the
# NAME=value lines, which hold no spaces, so `export $(.ci/kafka.sh start)` works. As
# root, start also installs kcat from Debian's packages when it is missing (the interop
# test writes with it); without kcat that test skips.
#
# Settings, from the environment:
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version (default below)
#   KAFKA_PORT             client port (19092); KAFKA_CONTROLLER_PORT (19093)
#   KAFKA_OAUTH_PORT       OAUTHBEARER client port (KAFKA_PORT + 2, so 19094)
#   DRIFTMON_CACHE         cache folder (~/.cache/driftmon); the jars go to
#                          $DRIFTMON_CACHE/kafka-<version>/libs
#   DRIFTMON_KAFKA_DATA    config, data, pid and log (${TMPDIR:-/tmp}/driftmon-kafka-<port>)
#   KAFKA_HEAP_OPTS        JVM heap (-Xms128m -Xmx512m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (90)
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
# Derived from KAFKA_PORT, so that a second broker on other ports (the soak campaign's,
# a benchmark's) does not need a third setting to keep out of the first one's way.
KAFKA_OAUTH_PORT=${KAFKA_OAUTH_PORT:-$((KAFKA_PORT + 2))}
# The scope every token on the OAUTHBEARER listener must hold.
KAFKA_OAUTH_SCOPE=kafka
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
CACHE=${DRIFTMON_CACHE:-${HOME:-/root}/.cache/driftmon}/kafka-${KAFKA_VERSION}
LIBS=$CACHE/libs
DATA=${DRIFTMON_KAFKA_DATA:-${TMPDIR:-/tmp}/driftmon-kafka-${KAFKA_PORT}}
PIDFILE=$DATA/kafka.pid
LOG=$DATA/kafka.log
BROKERS=127.0.0.1:$KAFKA_PORT
OAUTH_BROKERS=127.0.0.1:$KAFKA_OAUTH_PORT

say() { echo "kafka.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# fetch puts kafka_2.13 and its runtime dependencies into $LIBS, once. It downloads into
# a temporary folder and renames it, so an interrupted download is never taken for a
# cache.
fetch() {
	if [[ -f $LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
		say "using cached Kafka $KAFKA_VERSION in $LIBS"
		return
	fi
	command -v mvn >/dev/null || die "mvn not found: Maven is needed to fetch Kafka"
	say "fetching Kafka $KAFKA_VERSION and its runtime dependencies through Maven into $LIBS"
	mkdir -p "$CACHE"
	local work
	work=$(mktemp -d "$CACHE/fetch.XXXXXX")
	# The pom names only the broker; Maven resolves the rest.
	cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.driftmon</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
	local mvn=(mvn -q -B -Dstyle.color=never -f "$work/pom.xml")
	if ! "${mvn[@]}" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
		cat "$work/mvn.log" >&2
		rm -rf "$work"
		die "cannot fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
	fi
	# The broker logs through SLF4J 1.7; the Kafka distribution adds log4j's binding,
	# which the pom does not name. Take the one matching the log4j-core Kafka brings.
	local cores log4j
	cores=("$work"/libs/log4j-core-*.jar)
	log4j=${cores[0]##*/log4j-core-}
	log4j=${log4j%.jar}
	[[ -f ${cores[0]} ]] || log4j=
	if [[ -n $log4j ]] && ! "${mvn[@]}" dependency:copy \
		-Dartifact="org.apache.logging.log4j:log4j-slf4j-impl:$log4j" \
		-DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
		cat "$work/mvn.log" >&2
		say "warning: no log4j-slf4j-impl $log4j: the broker log will be nearly empty"
	fi
	rm -rf "$LIBS"
	mv "$work/libs" "$LIBS"
	rm -rf "$work"
	local jars=("$LIBS"/*.jar)
	say "fetched ${#jars[@]} jars ($(du -sh "$LIBS" | cut -f1))"
}

# ensure_kcat installs kcat from Debian when it is missing and we may.
ensure_kcat() {
	command -v kcat >/dev/null && return
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		say "kcat not installed (apt-get install kcat as root); the kcat interop test will skip"
		return
	fi
	say "installing kcat"
	local log
	log=$(mktemp)
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; } >"$log" 2>&1; then
		cat "$log" >&2
		say "warning: cannot install kcat; the kcat interop test will skip"
	fi
	rm -f "$log"
}

# pid prints the broker's pid when this data folder's broker runs.
pid() {
	[[ -f $PIDFILE ]] || return 1
	local p
	p=$(<"$PIDFILE")
	[[ -n $p ]] && kill -0 "$p" 2>/dev/null || return 1
	# A recycled pid is not ours: check that it is a broker started with our config.
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$DATA/server.properties" || return 1
	echo "$p"
}

# addresses prints what a test needs to find the broker, one NAME=value line each.
addresses() {
	echo "DRIFTMON_KAFKA_BROKERS=$BROKERS"
	echo "DRIFTMON_KAFKA_OAUTH_BROKERS=$OAUTH_BROKERS"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

configure() {
	mkdir -p "$DATA/logs"
	cat >"$DATA/server.properties" <<EOF
# Written by .ci/kafka.sh: one KRaft node on 127.0.0.1 for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,OAUTH://127.0.0.1:$KAFKA_OAUTH_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,OAUTH://127.0.0.1:$KAFKA_OAUTH_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OAUTH:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
# OAUTHBEARER on the OAUTH listener, with no server callback handler named: Kafka's
# unsecured validator, which reads unsigned JWS tokens. The login module's sub is the
# broker's own (unused) token; the validator options make it demand the scope.
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="driftmon-broker" unsecuredValidatorRequiredScope="$KAFKA_OAUTH_SCOPE";
log.dirs=$DATA/logs
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
EOF
	cat >"$DATA/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

start() {
	local t0=$SECONDS p
	if p=$(pid); then
		say "already running (pid $p)"
		addresses
		return
	fi
	rm -f "$PIDFILE"
	command -v java >/dev/null || die "java not found: Kafka $KAFKA_VERSION needs Java 17 or newer"
	local jv
	jv=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
	[[ ${jv%%.*} -ge 17 ]] 2>/dev/null || die "java $jv found: Kafka $KAFKA_VERSION needs Java 17 or newer"
	port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is taken by another process"
	port_open "$KAFKA_CONTROLLER_PORT" && die "127.0.0.1:$KAFKA_CONTROLLER_PORT is taken by another process"
	[[ $KAFKA_OAUTH_PORT != "$KAFKA_PORT" && $KAFKA_OAUTH_PORT != "$KAFKA_CONTROLLER_PORT" ]] ||
		die "KAFKA_OAUTH_PORT $KAFKA_OAUTH_PORT is the client or controller port: give it one of its own"
	port_open "$KAFKA_OAUTH_PORT" && die "127.0.0.1:$KAFKA_OAUTH_PORT is taken by another process (set KAFKA_OAUTH_PORT)"
	ensure_kcat
	fetch
	configure
	local heap java
	read -ra heap <<<"$KAFKA_HEAP_OPTS"
	java=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
		-Dlog4j2.configurationFile="$DATA/log4j2.properties" -cp "$LIBS/*")
	if [[ ! -f $DATA/logs/meta.properties ]]; then
		local id=-
		# A Kafka cluster id is 16 random bytes in URL-safe base64 without padding. Like
		# Kafka's own Uuid.randomUuid, draw again when it starts with "-", which the
		# tool's argument parser would take for an option.
		while [[ $id == -* ]]; do
			id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		done
		say "formatting $DATA/logs for cluster $id"
		"${java[@]}" kafka.tools.StorageTool format -t "$id" -c "$DATA/server.properties" >"$LOG" 2>&1 ||
			{
				cat "$LOG" >&2
				die "cannot format storage"
			}
	else
		say "reusing the data in $DATA/logs"
	fi
	say "starting the broker on $BROKERS (log: $LOG)"
	# The broker gets its own session and no terminal or pipe of ours, so it outlives
	# this script and a caller reading our stdout is not kept waiting for it.
	# shellcheck disable=SC2016 # $$ and $@ are the child shell's
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" "${java[@]}" kafka.Kafka "$DATA/server.properties" \
		>>"$LOG" 2>&1 </dev/null &
	local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while ((SECONDS < deadline)); do
		sleep 0.5
		if [[ -f $PIDFILE ]] && ! p=$(pid); then
			tail -n 40 "$LOG" >&2
			die "the broker exited while starting"
		fi
		port_open "$KAFKA_PORT" || continue
		port_open "$KAFKA_OAUTH_PORT" || continue
		grep -q 'Kafka Server started' "$LOG" || continue
		# A metadata request through a non-JVM client proves the broker answers.
		if command -v kcat >/dev/null && ! kcat -L -b "$BROKERS" -m 5 >/dev/null 2>&1; then
			continue
		fi
		say "ready in $((SECONDS - t0)) s (pid $(<"$PIDFILE"))"
		addresses
		return
	done
	tail -n 40 "$LOG" >&2
	stop keep
	die "the broker did not serve within ${KAFKA_START_TIMEOUT}s"
}

# stop ends the broker; with "keep" its data stays for the next start.
stop() {
	local p
	if p=$(pid); then
		say "stopping the broker (pid $p)"
		kill -TERM "$p"
		local deadline=$((SECONDS + 30))
		while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
		if kill -0 "$p" 2>/dev/null; then
			say "the broker ignored SIGTERM for 30 s; killing it"
			kill -KILL "$p"
			while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
		fi
	else
		say "not running"
	fi
	rm -f "$PIDFILE"
	if [[ ${1:-} != keep && -d $DATA ]]; then
		rm -rf "$DATA"
		say "removed $DATA"
	fi
}

status() {
	local p
	if p=$(pid); then
		echo "running: pid $p, brokers $BROKERS (OAUTHBEARER: $OAUTH_BROKERS), data $DATA, Kafka $KAFKA_VERSION"
		return 0
	fi
	echo "not running (data $DATA $([[ -d $DATA ]] && echo kept || echo absent))"
	return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
stop-keep-data) stop keep ;;
restart)
	stop keep
	start
	;;
status) status ;;
*)
	echo "usage: $0 start|stop|stop-keep-data|restart|status" >&2
	exit 2
	;;
esac
