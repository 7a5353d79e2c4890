################################################################################
#
# tipring-prompts
#
################################################################################

# The recorded words of the *** voice menu (firmware/tipring/phone/voicemenu.py):
# Asterisk's core English prompts, recorded by Allison Smith, sponsored by
# Digium, CC-BY-SA 3.0. Only the clips the menu names are installed.
TIPRING_PROMPTS_VERSION = 1.6.1
TIPRING_PROMPTS_SOURCE = asterisk-core-sounds-en-wav-$(TIPRING_PROMPTS_VERSION).tar.gz
TIPRING_PROMPTS_SITE = https://downloads.asterisk.org/pub/telephony/sounds/releases
# The tarball has no top-level folder: digits/1.wav etc. are at its root.
TIPRING_PROMPTS_STRIP_COMPONENTS = 0
TIPRING_PROMPTS_LICENSE = CC-BY-SA-3.0
# No _LICENSE_FILES yet: legal-info refuses a licence file without a hash, and
# the hash of LICENSE-asterisk-core-en-1.6.1 must be computed from the verified
# tarball (the image carries the file and the credits all the same, below).

# Exactly voicemenu.MENU_CLIPS (tests/test_buildroot.py checks it).
TIPRING_PROMPTS_CLIPS = \
	activated auth-thankyou beep cancelled de-activated for hello is \
	pm-invalid-option removed spy-sip vm-and vm-goodbye vm-no vm-password \
	vm-press vm-star-cancel if-correct-press \
	$(addprefix digits/,0 1 2 3 4 5 6 7 8 9) \
	$(addprefix letters/,a b c d e f g h i j k l m n o p q r s t u v w x y z) \
	$(addprefix letters/,dot dash ascii95 ascii58 plus slash at)

TIPRING_PROMPTS_DIR_TARGET = $(TARGET_DIR)/usr/share/tipring/prompts

define TIPRING_PROMPTS_INSTALL_TARGET_CMDS
	$(foreach clip,$(TIPRING_PROMPTS_CLIPS),\
		$(INSTALL) -D -m 0644 $(@D)/$(clip).wav \
			$(TIPRING_PROMPTS_DIR_TARGET)/$(clip).wav$(sep))
	$(INSTALL) -D -m 0644 $(@D)/LICENSE-asterisk-core-en-$(TIPRING_PROMPTS_VERSION) \
		$(TIPRING_PROMPTS_DIR_TARGET)/LICENSE
	$(INSTALL) -D -m 0644 $(@D)/CREDITS-asterisk-core-en-$(TIPRING_PROMPTS_VERSION) \
		$(TIPRING_PROMPTS_DIR_TARGET)/CREDITS
	$(INSTALL) -D -m 0644 $(TIPRING_PROMPTS_PKGDIR)/README \
		$(TIPRING_PROMPTS_DIR_TARGET)/README
endef

$(eval $(generic-package))
