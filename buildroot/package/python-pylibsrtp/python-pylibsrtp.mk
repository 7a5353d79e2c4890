################################################################################
#
# python-pylibsrtp
#
################################################################################

PYTHON_PYLIBSRTP_VERSION = 1.0.0
PYTHON_PYLIBSRTP_SOURCE = pylibsrtp-$(PYTHON_PYLIBSRTP_VERSION).tar.gz
PYTHON_PYLIBSRTP_SITE = https://files.pythonhosted.org/packages/source/p/pylibsrtp
PYTHON_PYLIBSRTP_SETUP_TYPE = setuptools
PYTHON_PYLIBSRTP_LICENSE = BSD-3-Clause
PYTHON_PYLIBSRTP_LICENSE_FILES = LICENSE
PYTHON_PYLIBSRTP_DEPENDENCIES = host-python-cffi host-python-wheel libsrtp openssl

$(eval $(python-package))
