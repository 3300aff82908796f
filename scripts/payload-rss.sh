#!/bin/bash
# payload-rss.sh GATEWAY_BINARY: the gateway's RSS (VmRSS, and its peak VmHWM) idle and after eight 10 MB MQTT messages
# (QoS 1) on a private Mosquitto (loopback, no message_size_limit); Kafka is unreachable, so nothing leaves the buffer.
set -u
bin=$1
d=$(mktemp -d); mport=$((20000 + RANDOM % 10000)); hport=$((mport + 1))
cat >$d/m.conf <<C
listener $mport 127.0.0.1
allow_anonymous true
message_size_limit 0
max_inflight_messages 20
C
mosquitto -c $d/m.conf >$d/m.log 2>&1 & mpid=$!
sleep 0.5
cat >$d/g.yaml <<C
gateway_id: mem
state_dir: $d/state
http: {listen: "127.0.0.1:$hport"}
kafka: {brokers: ["127.0.0.1:1"], topic: t}
mqtt:
  - name: m
    broker: tcp://127.0.0.1:$mport
    subscriptions: [{topic: "plant/{device}/telemetry", qos: 1}]
C
$bin run -config $d/g.yaml >$d/g.log 2>&1 & gpid=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$hport/readyz >/dev/null && break; sleep 0.2; done
rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$gpid/status; }
echo "idle:  $(rss)"
python3 -c "import json; print(json.dumps({'ts': 1, 'v': 'x'*(10*1024*1024)}))" >$d/big.json
for i in 1 2 3 4 5 6 7 8; do mosquitto_pub -p $mport -q 1 -t plant/d$i/telemetry -f $d/big.json; done
sleep 3
echo "after: $(rss)"
curl -s http://127.0.0.1:$hport/metrics | grep -E '^fieldgate_(input_readings_total|input_dead_letters_total|buffer_dead_letter_bytes)' 
kill $gpid; wait $gpid; kill $mpid; wait $mpid 2>/dev/null; rm -rf $d
