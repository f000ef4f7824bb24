/** SIGINT/SIGTERM as an AbortSignal: the first asks for a graceful stop, a second one forces it. */
import process from "node:process";

export function stopSignal(onForce: () => void = () => process.exit(130)): AbortSignal {
  const controller = new AbortController();
  const handle = () => {
    if (controller.signal.aborted) return onForce();
    controller.abort();
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
  return controller.signal;
}
