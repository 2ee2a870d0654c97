export * from "./libc.ts";
export { errnoName, SysError } from "./errors.ts";
