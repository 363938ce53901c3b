// The SDK's Node transport imports `ws` dynamically; the browser build never loads it (vite: external).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const WebSocket: any;
