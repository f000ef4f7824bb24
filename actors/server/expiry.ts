/**
 * When something with an expiry (a grant, a session) has ended, as a server judges it: only
 * once its own clock is limits.clockSkewMaxMs past the expiry, so nothing ends before its
 * time on a server whose clock runs up to that much ahead (it may last that much longer).
 */
import { limits } from "../../events/mod.ts";

export const pastTime = (expiresAt: number, now: number) => now >= expiresAt + limits.clockSkewMaxMs;
