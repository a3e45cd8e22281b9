// Application entry for the ESP32 build (mcconfig -m -p esp32). The update agent is not wired in yet: this
// skeleton only proves the manifest builds; the device-agent and ESP32 issues replace it.
trace("esp32-ota: skeleton entry, no update agent yet\n");
