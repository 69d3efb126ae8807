# Sourced by the end-to-end tests that need a Kubernetes API server (after topology.sh):
# tests/kube/apiserver.py on the node's loopback, https://127.0.0.1:6443, its control
# interface on http://127.0.0.1:6444. kube_api_setup DIR writes DIR/ca.pem, the server's
# certificate for 127.0.0.1, and DIR/token (the service account's, as the kubelet mounts
# it: DIR/sa/token and DIR/sa/ca.crt). The state (DIR/state.json) is the caller's.
KUBE_API=$(cd "$(dirname "${BASH_SOURCE[0]}")/../kube" && pwd)/apiserver.py

kube_api_setup() { # kube_api_setup DIR
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=kube-ca" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
        -keyout "$d/api.key" -out "$d/api.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' > "$d/san.ext"
    openssl x509 -req -in "$d/api.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/san.ext" -out "$d/api.pem" 2>/dev/null
    mkdir -p "$d/sa"
    echo "token-one-$$" > "$d/sa/token"
    cp "$d/ca.pem" "$d/sa/ca.crt"
}

kube_api_start() { # kube_api_start DIR: API_PID is the server's pid
    local d=$1
    rm -f "$d/api.port"
    # ip netns exec execs the server: $! is the server itself, and a kill reaches it
    ip netns exec "$NS_NODE" /usr/bin/python3 "$KUBE_API" --listen 127.0.0.1:6443 --port-file "$d/api.port" \
        --cert "$d/api.pem" --key "$d/api.key" --token-file "$d/sa/token" --control 127.0.0.1:6444 \
        --state "$d/state.json" --bookmark-interval 1 2>>"$d/api.err" &
    API_PID=$!
    EI_PIDS+=($API_PID)
    for _ in $(seq 50); do [ -s "$d/api.port" ] && return 0; sleep 0.1; done
    echo "API server did not start:"; cat "$d/api.err"; return 1
}

kube_ctl() { # kube_ctl METHOD PATH [JSON]
    in_node curl -sf -X "$1" "http://127.0.0.1:6444$2" ${3:+-H 'Content-Type: application/json' -d "$3"} >/dev/null
}

kube_pod() { # kube_pod NODE NAMESPACE NAME IP LABELS-JSON
    kube_ctl POST /pods "{\"metadata\":{\"name\":\"$3\",\"namespace\":\"$2\",\"labels\":$5},\"spec\":{\"nodeName\":\"$1\",\"containers\":[{\"name\":\"main\",\"image\":\"example/app:1\"}]},\"status\":{\"phase\":\"Running\",\"podIP\":\"$4\"}}"
}
