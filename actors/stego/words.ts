/**
 * Whether this machine stores a 32-bit word little-endian, so that an RGBA pixel read as one
 * word has R in its low byte: the word-at-a-time (SWAR) paths of covers, embedding and PNG
 * filtering rely on it, and fall back to bytes where it does not hold.
 */
export const littleEndian = new Uint8Array(new Uint32Array([0x0a0b0c0d]).buffer)[0] === 0x0d;
