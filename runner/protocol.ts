// The protocol lives in runner/protocol/ (index.ts: the loop; one module per tool step).
export * from "./protocol/index";
