// One frame <-> one message, in either of the node's two formats (binary protobuf, or protobuf's canonical JSON
// mapping in text frames with `?format=json`). Pure: no sockets here.
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ClientMessageSchema,
  ServerMessageSchema,
  type ClientMessage,
  type ServerMessage,
} from "./gen/stream_pb.js";

export type Format = "binary" | "json";

/** Thrown for a frame that is not a ServerMessage of this schema (the client reports it and keeps going). */
export class DecodeError extends Error {
  override name = "DecodeError";
}

export function clientMessage(init: MessageInitShape<typeof ClientMessageSchema>): ClientMessage {
  return create(ClientMessageSchema, init);
}

export function encodeClient(message: ClientMessage, format: Format): Uint8Array | string {
  return format === "json" ? toJsonString(ClientMessageSchema, message) : toBinary(ClientMessageSchema, message);
}

/** A received frame's payload: a string (text frame), or bytes in any of the shapes browsers and `ws` hand out. */
export type FrameData = string | ArrayBuffer | ArrayBufferView | readonly ArrayBufferView[];

function bytesOf(data: Exclude<FrameData, string>): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // `ws` may hand a fragmented message over as a list of Buffers
  const parts = data as readonly ArrayBufferView[];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}

/** Decodes a frame by what it is (text: JSON, binary: protobuf) rather than by the mode asked for. */
export function decodeServer(data: FrameData): ServerMessage {
  try {
    if (typeof data === "string") {
      // unknown fields are a newer server's additions: the schema only ever grows compatibly
      return fromJsonString(ServerMessageSchema, data, { ignoreUnknownFields: true });
    }
    return fromBinary(ServerMessageSchema, bytesOf(data));
  } catch (e) {
    throw new DecodeError(`undecodable frame: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Encodes a server message (tests play the server with it). */
export function encodeServer(message: ServerMessage, format: Format): Uint8Array | string {
  return format === "json" ? toJsonString(ServerMessageSchema, message) : toBinary(ServerMessageSchema, message);
}
