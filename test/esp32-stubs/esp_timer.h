/* Stub: ESP-IDF esp_timer.h. */
#include <stdint.h>
int64_t esp_timer_get_time(void);
