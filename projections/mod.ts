import { clusterProjection } from "./cluster.ts";
import { grantsProjection } from "./grants.ts";
import type { Projection } from "./projection.ts";
import { imagesProjection } from "./images.ts";
import { outboxProjection } from "./outbox.ts";
import { requestsProjection } from "./requests.ts";
import { usersProjection } from "./users.ts";

export * from "./cluster.ts";
export * from "./grants.ts";
export * from "./health.ts";
export * from "./images.ts";
export * from "./projection.ts";
export * from "./outbox.ts";
export * from "./requests.ts";
export * from "./users.ts";

/** Every projection `veil state` can show and a server keeps, by name. */
export const projections: readonly Projection<unknown>[] = [
  clusterProjection as Projection<unknown>,
  usersProjection as Projection<unknown>,
  outboxProjection as Projection<unknown>,
  imagesProjection as Projection<unknown>,
  requestsProjection as Projection<unknown>,
  grantsProjection as Projection<unknown>,
];

export function findProjection(name: string): Projection<unknown> | undefined {
  return projections.find((projection) => projection.name === name);
}
