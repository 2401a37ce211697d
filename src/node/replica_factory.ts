/**
 * The replica implementation the node runs: the pure VSR replica of src/vsr.
 * @module
 */
import { Replica } from "../vsr/replica.ts";
import type { ReplicaFactory } from "./replica_node.ts";

/** Builds the VSR replica from its configuration, state machine and recovered state. */
export const createReplica: ReplicaFactory = (config, stateMachine, recovered) => new Replica(config, stateMachine, recovered);
