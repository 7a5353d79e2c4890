include $(sort $(wildcard $(BR2_EXTERNAL_TIPRING_PATH)/package/*/*.mk))
