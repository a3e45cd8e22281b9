/* Stub: ESP-IDF esp_system.h. */
void esp_restart(void) __attribute__((noreturn));
