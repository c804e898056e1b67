#!/bin/bash
# Fails when a test run left something behind: Clampify ports bound to this host,
# Clampify rows on the OVS bridges, test namespaces, test containers or scratch bridges.
set -euo pipefail
LAB_DIR=${LAB_DIR:-/var/lib/clampify-lab}
HOST=${CLAMPIFY_HOST:-$(hostname)}
found=0

report() { echo "leftover: $*"; found=1; }

# shellcheck disable=SC1091
. "$LAB_DIR/openrc"
auth=$(jq -n --arg u "$OS_USERNAME" --arg p "$OS_PASSWORD" --arg pr "$OS_PROJECT_NAME" \
  '{auth:{identity:{methods:["password"],password:{user:{name:$u,domain:{name:"Default"},password:$p}}},
    scope:{project:{name:$pr,domain:{name:"Default"}}}}}')
token=$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$auth" "$OS_AUTH_URL/auth/tokens" |
  awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r')
ports=$(curl -sS -H "X-Auth-Token: $token" \
  "http://127.0.0.1:9696/v2.0/ports?device_owner=compute:clampify&binding:host_id=$HOST" | jq -r '.ports[] | "\(.id) \(.device_id)"')
[ -z "$ports" ] || report "Neutron ports bound to $HOST: $ports"

rows=$(ovs-vsctl --bare --columns=name find Interface 'external_ids:clampify-ifname!=""' 2>/dev/null || true)
[ -z "$rows" ] || report "OVS interfaces made by Clampify: $rows"

for ns in $(ip netns list | awk '{print $1}'); do
  case $ns in cfy-*|clampify-test-*) report "network namespace $ns";; esac
done

containers=$(docker ps -aq --filter name=cfy- 2>/dev/null || true)
[ -z "$containers" ] || report "containers: $containers"

for br in $(ovs-vsctl list-br); do
  case $br in ctest*) report "OVS bridge $br";; esac
done

if [ $found = 0 ]; then echo "nothing left behind"; fi
exit $found
