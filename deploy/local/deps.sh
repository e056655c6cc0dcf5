#!/usr/bin/env bash
# Installs the Debian packages fleetpipe needs to build, test and run its embedded stack, when
# any is missing. Idempotent: with everything present it only checks and exits. Uses sudo when
# not root; says clearly what to install when neither works.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config clang clang-format cppcheck
    librdkafka-dev libcurl4-openssl-dev libcjson-dev libpq-dev libmicrohttpd-dev
    postgresql postgresql-client curl kcat prometheus libclang-rt-14-dev
    yamllint python3-yaml
)
# deploy/check.sh renders the Kubernetes manifests with `kubectl kustomize`: Debian's
# kubernetes-client, unless some kubectl is installed already (the package of Kubernetes' own
# repository ships the same /usr/bin/kubectl and conflicts with it).
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)
# The embedded stack's Apache Kafka runs on a JVM, its jars fetched by Maven (kafka.sh fetch):
# Debian's, unless some java or mvn is on the PATH already.
command -v java >/dev/null 2>&1 || PACKAGES+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || PACKAGES+=(maven)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root (or with sudo): apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package starts a system cluster on 5432; the stack never uses it, and it
# need not run: the embedded stack starts clusters of its own.
echo "deps: installed ${missing[*]}" >&2
