################################################################################
#
# python-gpiozero-aarch64
#
################################################################################

PYTHON_GPIOZERO_AARCH64_VERSION = 2.0.1
PYTHON_GPIOZERO_AARCH64_SOURCE = gpiozero-$(PYTHON_GPIOZERO_AARCH64_VERSION).tar.gz
PYTHON_GPIOZERO_AARCH64_SITE = https://files.pythonhosted.org/packages/source/g/gpiozero
PYTHON_GPIOZERO_AARCH64_SETUP_TYPE = setuptools
PYTHON_GPIOZERO_AARCH64_LICENSE = BSD-3-Clause
PYTHON_GPIOZERO_AARCH64_LICENSE_FILES = LICENSE.rst

$(eval $(python-package))
