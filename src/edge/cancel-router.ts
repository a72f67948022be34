// Where a plaintext CancelRequest goes, decided in the main thread for every edge: over --cancel-rate for its client
// it goes nowhere; else to the client's running tunnels (by client affinity), and to the fleet when there is one.
import { KeyedBuckets } from "../token-bucket.ts";

/** A CancelRequest as it arrived, with what another proxy of a fleet needs to forward it as this one would. */
export interface ReceivedCancel {
  /** The client it counts under: a trusted PROXY source, else the peer (canonical form). */
  readonly client: string;
  readonly clientPort: number;
  /** Where the client connected to (the PROXY destination when a header named one). */
  readonly local: { readonly address: string; readonly port: number };
  /** The 16 bytes. */
  readonly request: Uint8Array;
  /** A PROXY header received with it, exactly as received. */
  readonly header: Uint8Array | null;
}

export type CancelRoute =
  | { readonly kind: "limited" }
  /** `relayed`: handed to the fleet, whose other members route it by their own clients. */
  | { readonly kind: "targets"; readonly ports: readonly number[]; readonly relayed: boolean };

export interface CancelRouterDeps {
  /** CancelRequests per second per client, in bursts of as many; 0: unlimited. */
  readonly rate: number;
  readonly now: () => number;
  /** The ports of the running tunnels this client's open connections use, newest first, at most --cancel-fanout. */
  readonly targets: (client: string) => Promise<number[]>;
  /** Publishes it to the fleet; false when there is no fleet or it cannot be reached now. */
  readonly relay: (cancel: ReceivedCancel) => boolean;
}

export class CancelRouter {
  private readonly perClient: KeyedBuckets;

  constructor(private readonly deps: CancelRouterDeps) {
    this.perClient = new KeyedBuckets(deps.rate, deps.now);
  }

  async route(cancel: ReceivedCancel): Promise<CancelRoute> {
    if (!this.perClient.tryTake(cancel.client)) return { kind: "limited" };
    const ports = await this.deps.targets(cancel.client);
    return { kind: "targets", ports, relayed: this.deps.relay(cancel) };
  }
}
