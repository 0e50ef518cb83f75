import { AwsCallError, describeCause } from "../../agent/core/errors";

describe("describeCause", () => {
  it("shows Route 53's own text when the SDK's message is only 'UnknownError'", () => {
    const sdkError = Object.assign(new Error("UnknownError"), {
      name: "InvalidChangeBatch",
      Error: {
        Type: "Sender",
        Code: "InvalidChangeBatch",
        Message: "[Tried to create resource record set [name='a.x.', type='A'] but it already exists]",
      },
    });
    expect(new AwsCallError("ChangeResourceRecordSets", "Z1 (a.x. A)", sdkError).message).toBe(
      "ChangeResourceRecordSets Z1 (a.x. A): InvalidChangeBatch: [Tried to create resource record set [name='a.x.', type='A'] but it already exists]",
    );
  });

  it("keeps an ordinary message and prefixes the code once", () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "Throttling" });
    expect(describeCause(throttled)).toBe("Throttling: Rate exceeded");
    expect(describeCause(Object.assign(new Error("Throttling: Rate exceeded"), { name: "Throttling" }))).toBe(
      "Throttling: Rate exceeded",
    );
    expect(describeCause("plain")).toBe("plain");
  });
});
