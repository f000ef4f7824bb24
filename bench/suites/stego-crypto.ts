/**
 * Crypto and stego speed on a 12 MP image, each against a reference measured in the same run:
 * - embed / extract (1 bit per channel, full cover) in MP/s, and as a ratio to a plain copy
 *   of the same pixel buffer (target >= 100 MP/s per core);
 * - sealing (segmented AES-256-GCM) in MB/s, as a ratio to node:crypto AES-256-GCM on the
 *   same data;
 * - PNG encode and decode in MP/s (target encode >= 20 MP/s);
 * - container overhead (stored PNG bytes / payload bytes) for generated covers at bits 1, 2, 4
 *   (target <= 2.5 at bits 2);
 * - a 12 MP photo sealed: encrypted, hidden in a generated cover, encoded (target <= 1.5 s);
 * - the worker pool: four 3 MP embeds one after another on the main thread, against the stego
 *   actor with a worker per core: the speed-up from using both cores.
 */
import { createCipheriv } from "node:crypto";
import { availableParallelism } from "node:os";
import { sealObject } from "../../actors/crypto/mod.ts";
import {
  capacityBytes,
  coverSizeFor,
  decodePng,
  embed,
  encodePng,
  extract,
  generateCover,
} from "../../actors/stego/mod.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { startStegoActor } from "../../infra/workers/actors.ts";
import { bestSeconds, type Figures, round2, type Suite } from "../suite.ts";

const width = 4_000;
const height = 3_000;
const megapixels = (width * height) / 1e6;
const rounds = 3;
const key = new Uint8Array(32).fill(5);

const best = (work: () => unknown) => bestSeconds(rounds, work);

export const stegoCryptoSuite: Suite = {
  name: "stego-crypto",
  description: "embed/extract, sealing, PNG, overhead and worker-pool speed-up on a 12 MP image",
  async run(report) {
    const cover = generateCover(7, width, height);
    const payload = cryptoRandom.bytes(capacityBytes(width * height, 1));

    const copy = await best(() => cover.rgba.slice());
    // The embedding itself, in place on a fresh copy each round (as the stego worker does, on
    // the cover it made or decoded): the copy, a plain memcpy measured above, is left out.
    let stego = cover;
    let embedding = Infinity;
    for (let round = 0; round < rounds; round++) {
      const fresh = { ...cover, rgba: cover.rgba.slice() };
      const started = performance.now();
      stego = embed(fresh, key, payload, 1, { inPlace: true });
      embedding = Math.min(embedding, (performance.now() - started) / 1_000);
    }
    const extracting = await best(() => extract(stego, key));
    report(
      `embed ${round2(megapixels / embedding)} MP/s, extract ${
        round2(megapixels / extracting)
      } MP/s (target >= 100); ` +
        `plain copy ${round2(megapixels / copy)} MP/s`,
    );

    const data = cryptoRandom.bytes(64 * 1024 * 1024);
    const sealing = await best(() => sealObject(key, new Uint8Array(16), data));
    const reference = await best(() => {
      const cipher = createCipheriv("aes-256-gcm", key, new Uint8Array(12));
      cipher.update(data);
      cipher.final();
    });
    const megabytes = data.byteLength / 1e6;
    report(
      `seal ${Math.round(megabytes / sealing)} MB/s vs node:crypto AES-256-GCM ${
        Math.round(megabytes / reference)
      } MB/s`,
    );

    let png: Uint8Array = new Uint8Array();
    const encoding = await best(async () => (png = await encodePng(stego)));
    const decoding = await best(() => decodePng(png));
    report(
      `PNG encode ${round2(megapixels / encoding)} MP/s (target >= 20), decode ${round2(megapixels / decoding)} MP/s`,
    );

    const overhead: Record<number, number> = {};
    for (const bits of [1, 2, 4]) {
      const bytes = 1_000_000;
      const size = coverSizeFor(bytes, { bits });
      const written = await encodePng(
        embed(generateCover(3, size.width, size.height), key, cryptoRandom.bytes(bytes), bits),
      );
      overhead[bits] = round2(written.byteLength / bytes);
    }
    report(
      `overhead (PNG bytes / payload bytes): bits 1 ${overhead[1]}, bits 2 ${overhead[2]} (target <= 2.5), bits 4 ${
        overhead[4]
      }`,
    );

    // A 12 MP photo is about 4 MB as a JPEG: encrypt it, hide it in a generated cover, encode.
    const photo = cryptoRandom.bytes(4 * 1024 * 1024);
    const sealingPhoto = await best(async () => {
      const sealed = await sealObject(key, new Uint8Array(16), photo);
      const size = coverSizeFor(sealed.byteLength, { bits: 1 });
      await encodePng(embed(generateCover(1, size.width, size.height), key, sealed, 1, { inPlace: true }));
    });
    report(`a 12 MP photo (4 MB) sealed into a PNG in ${round2(sealingPhoto)} s (target <= 1.5)`);

    const jobs = 4;
    const small = generateCover(2, 2_000, 1_500);
    const smallPayload = cryptoRandom.bytes(capacityBytes(2_000 * 1_500, 1));
    const smallPng = await encodePng(small);
    const alone = await best(async () => {
      for (let job = 0; job < jobs; job++) {
        await encodePng(embed(decodePng(smallPng), key, smallPayload, 1, { inPlace: true }));
      }
    });
    const actor = startStegoActor({ size: availableParallelism() });
    let pooled: number;
    try {
      await actor.embed({ payload: smallPayload, stegoKey: key, bits: 1, cover: smallPng }); // warm the workers
      pooled = await best(() =>
        Promise.all(
          Array.from({ length: jobs }, () =>
            actor.embed({ payload: smallPayload, stegoKey: key, bits: 1, cover: smallPng })),
        )
      );
    } finally {
      await actor.stop();
    }
    report(
      `worker pool (${availableParallelism()} workers): ${jobs} embeds of 3 MP in ${round2(pooled)} s vs ${
        round2(alone)
      } s on the main thread = speed-up ${round2(alone / pooled)}`,
    );

    return {
      embed_mp_per_s: round2(megapixels / embedding),
      extract_mp_per_s: round2(megapixels / extracting),
      embed_to_copy_ratio: round2(copy / embedding),
      extract_to_copy_ratio: round2(copy / extracting),
      seal_mb_per_s: Math.round(megabytes / sealing),
      seal_to_node_aes_gcm_ratio: round2(reference / sealing),
      png_encode_mp_per_s: round2(megapixels / encoding),
      png_decode_mp_per_s: round2(megapixels / decoding),
      overhead_bits1: overhead[1]!,
      overhead_bits2: overhead[2]!,
      overhead_bits4: overhead[4]!,
      photo_12mp_sealed_s: round2(sealingPhoto),
      worker_pool_speedup_ratio: round2(alone / pooled),
    } satisfies Figures;
  },
};
