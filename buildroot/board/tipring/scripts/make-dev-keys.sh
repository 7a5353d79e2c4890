#!/usr/bin/env bash
# Make the development key and self-signed certificate that sign TipRing
# update bundles (RAUC) in development builds. They are written OUTSIDE the
# repository, to $TIPRING_KEYS_DIR (default ~/.config/tipring/keys):
#   dev.key.pem   private key (0600)
#   dev.cert.pem  certificate, also the keyring a development image trusts
# An image only installs bundles signed by a key its keyring trusts, so a
# device flashed with a development image only accepts your development
# bundles. Production builds name their own key, certificate and keyring
# (BR2_TIPRING_RAUC_KEY/_CERT/_KEYRING or TIPRING_RAUC_KEY/_CERT/_KEYRING).
#
# usage: make-dev-keys.sh [--force]
set -euo pipefail

dir=${TIPRING_KEYS_DIR:-${HOME}/.config/tipring/keys}
key=${dir}/dev.key.pem
cert=${dir}/dev.cert.pem

if [[ -e ${key} && ${1:-} != --force ]]; then
	echo "development key already exists: ${key} (use --force to replace it)"
	exit 0
fi
command -v openssl >/dev/null || { echo "make-dev-keys.sh needs openssl" >&2; exit 1; }

case "$(realpath -m "${dir}")/" in
	"$(realpath -m "$(dirname "$0")/../../..")"/*)
		echo "refusing to put keys inside the repository (${dir})" >&2
		exit 1 ;;
esac

mkdir -p "${dir}"
chmod 0700 "${dir}"
umask 077
openssl req -x509 -newkey rsa:4096 -sha256 -nodes -days 3650 \
	-keyout "${key}" -out "${cert}" \
	-subj "/O=TipRing development/CN=TipRing development bundle signing" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,digitalSignature,keyCertSign" \
	2>/dev/null
chmod 0644 "${cert}"
echo "development key:         ${key}"
echo "development certificate: ${cert}"
