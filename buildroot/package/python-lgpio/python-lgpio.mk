################################################################################
#
# python-lgpio
#
################################################################################

PYTHON_LGPIO_VERSION = 0.2.2.0
PYTHON_LGPIO_SOURCE = lgpio-$(PYTHON_LGPIO_VERSION).tar.gz
PYTHON_LGPIO_SITE = https://files.pythonhosted.org/packages/source/l/lgpio
PYTHON_LGPIO_SETUP_TYPE = setuptools
PYTHON_LGPIO_LICENSE = Unlicense
PYTHON_LGPIO_LICENSE_FILES = LICENSE
# setup.py runs SWIG on lgpio.i; PYPI=1 compiles the bundled C library into
# the module instead of linking a separately installed liblgpio.
PYTHON_LGPIO_DEPENDENCIES = host-swig
PYTHON_LGPIO_ENV = PYPI=1

$(eval $(python-package))
