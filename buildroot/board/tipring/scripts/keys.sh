#!/usr/bin/env bash
# Sourced by post-build.sh and post-image.sh: resolve the bundle signing key,
# certificate and keyring. Order: environment (TIPRING_RAUC_KEY, ..._CERT,
# ..._KEYRING), then the BR2_TIPRING_RAUC_* options, then the development key
# pair from make-dev-keys.sh (made on demand).

tipring_config() {
	# Value of a string/bool option in ${BR2_CONFIG}, unquoted; empty if unset.
	sed -n "s/^$1=//p" "${BR2_CONFIG}" | sed 's/^"\(.*\)"$/\1/'
}

tipring_resolve_keys() {
	local scripts dev
	scripts=$(dirname "${BASH_SOURCE[0]}")
	dev=${TIPRING_KEYS_DIR:-${HOME}/.config/tipring/keys}
	RAUC_KEY=${TIPRING_RAUC_KEY:-$(tipring_config BR2_TIPRING_RAUC_KEY)}
	RAUC_CERT=${TIPRING_RAUC_CERT:-$(tipring_config BR2_TIPRING_RAUC_CERT)}
	RAUC_KEYRING=${TIPRING_RAUC_KEYRING:-$(tipring_config BR2_TIPRING_RAUC_KEYRING)}
	if [[ -z ${RAUC_KEY} && -z ${RAUC_CERT} ]]; then
		if [[ ! -e ${dev}/dev.key.pem ]]; then
			echo ">>> TipRing: no signing key given; making the development key pair"
			TIPRING_KEYS_DIR=${dev} bash "${scripts}/make-dev-keys.sh"
		fi
		RAUC_KEY=${dev}/dev.key.pem
		RAUC_CERT=${dev}/dev.cert.pem
		echo ">>> TipRing: signing with the DEVELOPMENT key ${RAUC_KEY}"
	fi
	RAUC_KEYRING=${RAUC_KEYRING:-${RAUC_CERT}}
	if [[ -z ${RAUC_KEY} || -z ${RAUC_CERT} ]]; then
		echo "TipRing: set both the signing key and certificate (got key='${RAUC_KEY}' cert='${RAUC_CERT}')" >&2
		return 1
	fi
	if [[ ${RAUC_KEY} != pkcs11:* && ! -r ${RAUC_KEY} ]]; then
		echo "TipRing: signing key ${RAUC_KEY} is not readable" >&2
		return 1
	fi
	if [[ ! -r ${RAUC_CERT} || ! -r ${RAUC_KEYRING} ]]; then
		echo "TipRing: certificate ${RAUC_CERT} or keyring ${RAUC_KEYRING} is not readable" >&2
		return 1
	fi
}
