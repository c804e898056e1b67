"""A minimal Keystone v3 and Neutron client on the standard library, for polling and the ceiling.

Each request opens its own connection, because the lab's uWSGI servers send
`Connection: close` anyway, and so the client is safe to use from many threads at once.
"""

import json
import shlex
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = 60


class ApiError(Exception):
    """An HTTP request that failed or returned a status of 400 or more."""


def read_openrc(path):
    """Return the OS_* variables that an openrc file exports, as a dict."""
    variables = {}
    with open(path, encoding="utf-8") as openrc:
        for line in openrc:
            line = line.strip()
            if not line.startswith("export "):
                continue
            name, _, value = line[len("export "):].partition("=")
            words = shlex.split(value)
            variables[name] = words[0] if words else ""
    return variables


def request(method, url, token=None, body=None):
    """Send one request and return (status, parsed JSON body or None).

    Raises ApiError on a connection failure or an HTTP status of 400 or more, with the
    method, URL, status and the start of the response body.
    """
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None), response.headers
    except urllib.error.HTTPError as err:
        detail = err.read()[:400].decode(errors="replace")
        raise ApiError(f"{method} {url} returned HTTP {err.code}: {detail}") from err
    except (urllib.error.URLError, OSError) as err:
        raise ApiError(f"{method} {url} failed: {err}") from err


class Cloud:
    """A Keystone token scoped to the openrc's project and the Neutron endpoint from its catalog."""

    def __init__(self, openrc_path):
        env = read_openrc(openrc_path)
        self.auth_url = env["OS_AUTH_URL"].rstrip("/")
        if not self.auth_url.endswith("/v3"):
            self.auth_url += "/v3"
        self.region = env.get("OS_REGION_NAME", "RegionOne")
        self.interface = env.get("OS_INTERFACE", "public")
        self._env = env
        self.token = None
        self.neutron_url = None

    def authenticate(self):
        """Issue a token and look up the network endpoint in its catalog."""
        env = self._env
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": env["OS_USERNAME"],
                "domain": {"name": env.get("OS_USER_DOMAIN_NAME", "Default")},
                "password": env["OS_PASSWORD"]}}},
            "scope": {"project": {
                "name": env["OS_PROJECT_NAME"],
                "domain": {"name": env.get("OS_PROJECT_DOMAIN_NAME", "Default")}}}}}
        _, reply, headers = request("POST", f"{self.auth_url}/auth/tokens", body=body)
        self.token = headers["X-Subject-Token"]
        self.neutron_url = self._network_endpoint(reply["token"].get("catalog", []))
        # Neutron validates a new token against Keystone once (about a second on the lab) and
        # caches it, so one request here keeps that cost out of every timed request.
        self.neutron("GET", "/networks?limit=1")

    def _network_endpoint(self, catalog):
        for service in catalog:
            if service.get("type") != "network":
                continue
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") == self.interface and \
                        endpoint.get("region_id", endpoint.get("region")) == self.region:
                    url = endpoint["url"].rstrip("/")
                    return url if url.endswith("/v2.0") else url + "/v2.0"
        raise ApiError(f"no {self.interface} network endpoint in region {self.region} "
                       f"in the catalog of {self.auth_url}")

    def neutron(self, method, path, body=None):
        """Send a request to Neutron; `path` starts after /v2.0."""
        _, reply, _ = request(method, self.neutron_url + path, token=self.token, body=body)
        return reply

    def network_id(self, name):
        """Return the id of the network called `name`; raise ApiError when there is none."""
        query = urllib.parse.urlencode({"name": name, "fields": "id"})
        networks = self.neutron("GET", f"/networks?{query}")["networks"]
        if not networks:
            raise ApiError(f"network {name} not found in Neutron")
        return networks[0]["id"]

    def ports_by_device(self, device_ids, fields=("id", "status", "device_id")):
        """Return the ports whose device_id is one of `device_ids`, in requests of 25 ids."""
        ports = []
        device_ids = list(device_ids)
        for start in range(0, len(device_ids), 25):
            query = [("device_id", d) for d in device_ids[start:start + 25]]
            query += [("fields", f) for f in fields]
            ports += self.neutron("GET", "/ports?" + urllib.parse.urlencode(query))["ports"]
        return ports

    def delete_port(self, port_id):
        """Delete a port; a port that is already gone counts as deleted."""
        try:
            self.neutron("DELETE", f"/ports/{port_id}")
        except ApiError as err:
            if "HTTP 404" not in str(err):
                raise
