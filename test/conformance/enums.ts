// Enum values of etcd's protos (the client decodes and encodes enums as numbers).

export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;
export const WatchFilter = { NOPUT: 0, NODELETE: 1 } as const;
export const EventType = { PUT: 0, DELETE: 1 } as const;
