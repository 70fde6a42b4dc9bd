"""Provision one test cloud for bora: a project, a member user in it, and extra
catalog entries (a RegionTwo and a `compute` service in two regions) so that
endpoint selection can be tested on a real catalog.

Run by start.sh with the virtualenv's python; stdlib only. Prints shell
assignments (url, user, user_id, project, project_id) for the env file.
"""

import argparse
import json
import ssl
import urllib.error
import urllib.request


def main():
    parser = argparse.ArgumentParser()
    for flag in ("url", "cafile", "admin-password", "user", "password", "project", "cloud",
                 "service-user", "service-password"):
        parser.add_argument("--" + flag, required=True)
    args = parser.parse_args()

    # An explicit context: the machine's REQUESTS_CA_BUNDLE-style variables
    # must not decide which CA is trusted.
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )

    def call(method, path, body=None, token=None, ok_conflict=False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(args.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("X-Auth-Token", token)
        try:
            with opener.open(request, timeout=30) as response:
                text = response.read()
                return response.headers, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            if ok_conflict and error.code == 409:
                return None, None
            raise SystemExit(f"{method} {path}: {error.code} {error.read()[:500]!r}")

    headers, _ = call("POST", "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": args.admin_password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    admin = headers["X-Subject-Token"]

    def find(collection, key, name):
        _, body = call("GET", f"/{collection}?name={name}", token=admin)
        return body[key][0]["id"]

    call("POST", "/projects", {"project": {"name": args.project, "domain_id": "default"}},
         admin, ok_conflict=True)
    project_id = find("projects", "projects", args.project)
    call("POST", "/users", {"user": {"name": args.user, "domain_id": "default",
                                     "password": args.password,
                                     "default_project_id": project_id}},
         admin, ok_conflict=True)
    user_id = find("users", "users", args.user)
    member = find("roles", "roles", "member")
    call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{member}", token=admin)

    # A service user (a trustee for trust tests, like bora's own service
    # user on its home cloud): member of its own project only, so anything
    # it does on the user's project comes from a trust.
    service_project = args.service_user + "-proj"
    call("POST", "/projects", {"project": {"name": service_project, "domain_id": "default"}},
         admin, ok_conflict=True)
    service_project_id = find("projects", "projects", service_project)
    call("POST", "/users", {"user": {"name": args.service_user, "domain_id": "default",
                                     "password": args.service_password,
                                     "default_project_id": service_project_id}},
         admin, ok_conflict=True)
    service_user_id = find("users", "users", args.service_user)
    call("PUT", f"/projects/{service_project_id}/users/{service_user_id}/roles/{member}",
         token=admin)

    # Extra catalog entries: compute in two regions, public and internal.
    # The URLs are fake (nothing listens) and name the cloud so tests can tell
    # which catalog they came from.
    call("POST", "/regions", {"region": {"id": "RegionTwo"}}, admin, ok_conflict=True)
    _, body = call("GET", "/services?type=compute", token=admin)
    if body["services"]:
        service_id = body["services"][0]["id"]
    else:
        _, body = call("POST", "/services", {"service": {"type": "compute", "name": "nova"}}, admin)
        service_id = body["service"]["id"]
        for region in ("RegionOne", "RegionTwo"):
            for interface in ("public", "internal"):
                url = (f"http://127.0.0.1:9/{args.cloud}/{region.lower()}/"
                       f"{interface}/compute/v2.1")
                call("POST", "/endpoints", {"endpoint": {
                    "service_id": service_id, "interface": interface,
                    "region_id": region, "url": url}}, admin)

    print(f"url={args.url}")
    print(f"user={args.user}")
    print(f"user_id={user_id}")
    print(f"project={args.project}")
    print(f"project_id={project_id}")
    print(f"service_user={args.service_user}")
    print(f"service_user_id={service_user_id}")
    print(f"service_project={service_project}")


if __name__ == "__main__":
    main()
