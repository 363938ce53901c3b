// @tickfan/client: a typed client of the tickfan stream (protocol version 2) and order API.
export * from "./client.js";
export * from "./rest.js";
export * from "./checks.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { Endpoints } from "./endpoints.js";
export { DecodeError, decodeServer, encodeClient, encodeServer, clientMessage, type Format } from "./codec.js";
export { defaultSocketFactory, realTimers, type SocketFactory, type SocketLike, type Timers } from "./transport.js";
export * from "./gen/stream_pb.js";
