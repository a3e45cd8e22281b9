// embedded:network/interface/wifi as the Moddable SDK 8.x declares it (typings/embedded_network/interface/wifi.d.ts;
// implemented on ESP32 by modules/io/wifi/esp32): what device/esp32/wifi.ts uses. Missing from @moddable/typings 5.6.0.
declare module "embedded:network/interface/wifi" {
  export interface WiFiConnectOptions {
    SSID: string;
    password?: string;
    channel?: number;
  }
  export default class WiFi {
    constructor(options: { onChanged?: (property: "connection" | "address") => void });
    close(): void;
    connect(options: WiFiConnectOptions): void;
    disconnect(): void;
    /** 200 disconnected, 300 connecting, 400 connected, 500 connected with an IP address. */
    readonly connection: number;
    readonly address: string | undefined;
    readonly SSID: string | undefined;
  }
}
