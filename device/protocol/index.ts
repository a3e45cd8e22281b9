// Device–server OTA protocol: platform-free (no Node APIs), imported by the server
// and by the device agent on XS.
export * from "./base64";
export * from "./canonical";
export * from "./delta";
export * from "./errors";
export * from "./health";
export * from "./limits";
export * from "./manifest";
export * from "./paths";
export * from "./release";
export * from "./schemas";
export * from "./status";
export * from "./topics";
export * from "./utf8";
export * from "./version";
