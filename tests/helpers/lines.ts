// The lines of a stream (a child's stdout or stderr), as they arrive, the last one included even without a newline.
export async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
    partial = parts.pop() ?? "";
    for (const text of parts) onLine(text);
  }
  if (partial !== "") onLine(partial);
}
