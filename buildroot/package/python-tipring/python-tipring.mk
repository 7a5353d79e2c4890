################################################################################
#
# python-tipring
#
################################################################################

# The firmware is the repository that holds this BR2_EXTERNAL tree.
PYTHON_TIPRING_SITE = $(realpath $(BR2_EXTERNAL_TIPRING_PATH)/..)
PYTHON_TIPRING_SITE_METHOD = local
PYTHON_TIPRING_VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' \
	$(PYTHON_TIPRING_SITE)/firmware/tipring/__init__.py)
PYTHON_TIPRING_SETUP_TYPE = setuptools
PYTHON_TIPRING_LICENSE = GPL-3.0+
PYTHON_TIPRING_LICENSE_FILES = LICENSE
# pyproject.toml's build-system: setuptools (from the infrastructure), wheel, cffi.
PYTHON_TIPRING_DEPENDENCIES = host-python-cffi host-python-wheel libffi

# Development leftovers in the checkout must not reach the build (a host-built
# _dsp.so, the virtualenv, caches) and the tests, benchmarks and this tree are
# not part of the distribution.
PYTHON_TIPRING_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/.venv --exclude=/build --exclude=/dist \
	--exclude=/tests --exclude=/bench --exclude=/buildroot \
	--exclude=/.hypothesis --exclude=/.pytest_cache --exclude=/.ruff_cache \
	--exclude=/.run --exclude='*.egg-info' --exclude=__pycache__ \
	--exclude='*.so' --exclude='*.o' --exclude=/firmware/tipring/_dsp.c

PYTHON_TIPRING_BOARD = $(call qstrip,$(BR2_PACKAGE_PYTHON_TIPRING_BOARD))
PYTHON_TIPRING_CONSOLE = $(call qstrip,$(BR2_PACKAGE_PYTHON_TIPRING_CONSOLE))

# The wheel's data files are relative to the prefix; Buildroot installs them
# under $(TARGET_DIR), so move share/tipring to /usr/share/tipring, where the
# firmware looks for board profiles.
define PYTHON_TIPRING_INSTALL_DATA
	if [ -d $(TARGET_DIR)/share/tipring ]; then \
		mkdir -p $(TARGET_DIR)/usr/share && \
		rm -rf $(TARGET_DIR)/usr/share/tipring && \
		mv $(TARGET_DIR)/share/tipring $(TARGET_DIR)/usr/share/tipring && \
		rmdir --ignore-fail-on-non-empty $(TARGET_DIR)/share; \
	fi
	test -f $(TARGET_DIR)/usr/share/tipring/hw/boards/$(PYTHON_TIPRING_BOARD).toml || \
		{ echo "python-tipring: no board profile hw/boards/$(PYTHON_TIPRING_BOARD).toml"; exit 1; }
	mkdir -p $(TARGET_DIR)/etc/default
	printf 'TIPRING_BOARD=%s\n' '$(PYTHON_TIPRING_BOARD)' \
		> $(TARGET_DIR)/etc/default/tipring
	printf 'TIPRING_CONSOLE_ARGS=%s\n' \
		'$(if $(PYTHON_TIPRING_CONSOLE),--console /dev/$(PYTHON_TIPRING_CONSOLE))' \
		>> $(TARGET_DIR)/etc/default/tipring
endef
PYTHON_TIPRING_POST_INSTALL_TARGET_HOOKS += PYTHON_TIPRING_INSTALL_DATA

# The console's UART must not also carry a login prompt: systemd's getty generator starts one on
# the kernel console (console= on the command line), so that instance is masked.
# Nor the HDMI screen (tty1): root has no password (`*`), so the login prompt systemd enables
# there by default could never be used; it is masked too (the screen still shows the kernel's
# console, console=tty1).
define PYTHON_TIPRING_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(PYTHON_TIPRING_PKGDIR)/tipring.service \
		$(TARGET_DIR)/usr/lib/systemd/system/tipring.service
	mkdir -p $(TARGET_DIR)/etc/systemd/system
	ln -sf /dev/null $(TARGET_DIR)/etc/systemd/system/getty@tty1.service
	if [ -n '$(PYTHON_TIPRING_CONSOLE)' ]; then \
		ln -sf /dev/null $(TARGET_DIR)/etc/systemd/system/serial-getty@$(PYTHON_TIPRING_CONSOLE).service; \
	fi
endef

$(eval $(python-package))
