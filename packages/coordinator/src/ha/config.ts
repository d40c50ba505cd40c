import os from "node:os";
import { z } from "zod";

/** coordinator.yaml `ha:` — absent: one coordinator on SQLite (the `single` backend). */
export const HaSectionSchema = z
  .strictObject({
    /** This coordinator's name in the election and the event log (default: the host name). */
    name: z.string().min(1).max(63).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only").default(os.hostname()),
    /** The leader lease: a dead leader is replaced within this. */
    leaseTtlS: z.int().min(2).max(60).default(5),
    etcd: z
      .strictObject({
        endpoints: z.array(z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })).min(1, "at least one etcd endpoint"),
        tls: z.strictObject({ ca: z.string().min(1).optional(), cert: z.string().min(1).optional(), key: z.string().min(1).optional() }).optional(),
        auth: z.strictObject({ username: z.string().min(1), password: z.string().min(1) }).optional(),
      })
      .optional(),
  })
  .superRefine((h, ctx) => {
    if (!h.etcd) ctx.addIssue({ code: "custom", path: ["etcd"], message: "required: high availability runs on etcd (leave out `ha:` for one coordinator)" });
    if (h.etcd?.tls && !!h.etcd.tls.cert !== !!h.etcd.tls.key) ctx.addIssue({ code: "custom", path: ["etcd", "tls", h.etcd.tls.cert ? "key" : "cert"], message: "cert and key go together" });
  })
  .optional();

export type HaSection = NonNullable<z.infer<typeof HaSectionSchema>>;
