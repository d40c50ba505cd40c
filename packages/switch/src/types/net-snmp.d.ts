// net-snmp ships no types. This declares only what pifleet uses; none of it leaks into the
// package's public types (dist .d.ts never mention "net-snmp").
declare module "net-snmp" {
  import type { Socket } from "node:dgram";

  export interface Varbind {
    oid: string;
    type: number;
    value: unknown;
  }

  export interface SessionOptions {
    port?: number;
    retries?: number;
    timeout?: number;
    backoff?: number;
    transport?: "udp4" | "udp6";
    version?: number;
    idBitsSize?: 16 | 32;
    sourceAddress?: string;
    engineID?: string;
    context?: string;
  }

  export interface UserOptions {
    name: string;
    level: number;
    authProtocol?: string;
    authKey?: string;
    privProtocol?: string;
    privKey?: string;
  }

  export type ResponseCallback = (error: Error | null, varbinds?: Varbind[]) => void;
  export type BulkCallback = (error: Error | null, varbinds?: Array<Varbind | Varbind[]>) => void;

  export interface Session {
    get(oids: string[], callback: ResponseCallback): void;
    getNext(oids: string[], callback: ResponseCallback): void;
    getBulk(oids: string[], nonRepeaters: number, maxRepetitions: number, callback: BulkCallback): void;
    set(varbinds: Varbind[], callback: ResponseCallback): void;
    close(): void;
    on(event: "error", listener: (error: Error) => void): this;
    on(event: "close", listener: () => void): this;
    /** Set once SNMPv3 engine discovery has succeeded (undocumented, read only). */
    msgSecurityParameters?: { msgAuthoritativeEngineID?: Buffer | string };
  }

  export interface MibRequest {
    oid: string;
    operation: number;
    setValue?: unknown;
    setType?: number;
    testSet?: boolean;
    commitSet?: boolean;
    error?: { errorStatus: number };
    instanceNode?: { value: unknown; valueType: number; oid: string };
    providerNode?: { provider: { name: string } };
    provider?: { name: string } | null;
    done(error?: { errorStatus: number; type?: number; value?: unknown }): void;
  }

  export interface ProviderColumn {
    number: number;
    name: string;
    type: number;
    maxAccess: number;
    rowStatus?: boolean;
    defVal?: unknown;
    constraints?: {
      enumeration?: Record<string, string>;
      ranges?: Array<{ min?: number; max?: number }>;
      sizes?: Array<{ min?: number; max?: number }>;
    };
  }

  export interface Provider {
    name: string;
    type: number;
    oid: string;
    maxAccess: number;
    scalarType?: number;
    tableColumns?: ProviderColumn[];
    tableIndex?: Array<{ columnName: string; foreign?: string }>;
    tableAugments?: string;
    constraints?: ProviderColumn["constraints"];
    handler?: (request: MibRequest) => void;
    createHandler?: ((request: { provider: Provider; action: string; row: unknown[] }) => unknown[] | undefined) | null;
  }

  export interface Mib {
    registerProvider(provider: Provider): void;
    setScalarValue(name: string, value: unknown): void;
    getScalarValue(name: string): unknown;
    addTableRow(name: string, row: unknown[]): void;
    getTableCells(name: string, byRow?: boolean, includeInstances?: boolean): unknown[][] | null;
    setTableSingleCell(name: string, column: number, rowIndex: unknown[], value: unknown): void;
    getTableSingleCell(name: string, column: number, rowIndex: unknown[]): unknown;
    deleteTableRow(name: string, rowIndex: unknown[]): void;
    getTableRowCells(name: string, rowIndex: unknown[]): unknown[] | null;
    lookup(oid: string): { children?: Record<string, unknown> } | null;
  }

  export interface Authorizer {
    addCommunity(community: string): void;
    addUser(user: UserOptions): void;
    getAccessControlModel(): {
      setCommunityAccess(community: string, level: number): void;
      setUserAccess(user: string, level: number): void;
    };
  }

  export interface AgentOptions {
    port?: number;
    address?: string | null;
    transport?: "udp4" | "udp6";
    disableAuthorization?: boolean;
    accessControlModelType?: number;
    engineID?: string;
    dgramModule?: { createSocket(type: "udp4" | "udp6"): Socket };
  }

  export interface Agent {
    getMib(): Mib;
    getAuthorizer(): Authorizer;
    close(callback?: (socket: unknown) => void): void;
    setBulkSetHandler(handler: (requests: MibRequest[], mib: Mib, testSet: boolean) => number | undefined): void;
    engine: { engineID: Buffer; engineBoots: number; engineTime: number };
  }

  export class RequestTimedOutError extends Error {}
  export class RequestFailedError extends Error {
    status: number;
  }
  export class ResponseInvalidError extends Error {
    code: number;
    info?: unknown;
  }
  export class RequestInvalidError extends Error {}

  interface NetSnmp {
    Version1: number;
    Version2c: number;
    Version3: number;
    ObjectType: Record<string, number> & {
      Integer: number;
      OctetString: number;
      Null: number;
      OID: number;
      Counter32: number;
      Gauge32: number;
      TimeTicks: number;
      Unsigned32: number;
      NoSuchObject: number;
      NoSuchInstance: number;
      EndOfMibView: number;
    };
    ErrorStatus: Record<string, number> & Record<number, string>;
    SecurityLevel: { noAuthNoPriv: number; authNoPriv: number; authPriv: number };
    AuthProtocols: Record<string, string>;
    PrivProtocols: Record<string, string>;
    AccessControlModelType: { None: number; Simple: number };
    AccessLevel: { None: number; ReadOnly: number; ReadWrite: number };
    MaxAccess: Record<string, number>;
    MibProviderType: { Scalar: number; Table: number };
    RowStatus: Record<string, number>;
    PduType: Record<string, number>;
    ResponseInvalidCode: Record<string, number>;
    createSession(target: string, community: string, options: SessionOptions): Session;
    createV3Session(target: string, user: UserOptions, options: SessionOptions): Session;
    createAgent(options: AgentOptions, callback: (error: Error | null, data?: unknown) => void): Agent;
    isVarbindError(varbind: Varbind): boolean;
    ObjectTypeUtil: {
      castSetValue(type: number, value: unknown, constraints?: unknown): unknown;
      [key: string]: unknown;
    };
    RequestTimedOutError: typeof RequestTimedOutError;
    RequestFailedError: typeof RequestFailedError;
    ResponseInvalidError: typeof ResponseInvalidError;
    RequestInvalidError: typeof RequestInvalidError;
  }

  const snmp: NetSnmp;
  export default snmp;
}
