import { useState, type FormEvent } from "react";

interface ComposerProps {
  onSend: (text: string) => void;
}

export function Composer({ onSend }: ComposerProps) {
  const [draft, setDraft] = useState("");

  function submit(event: FormEvent) {
    event.preventDefault();
    const text = draft.trim();
    if (!text) {
      return;
    }
    onSend(text);
    setDraft("");
  }

  return (
    <form className="chat__composer" onSubmit={submit}>
      <input
        aria-label="Message"
        placeholder="Type a message"
        value={draft}
        onChange={(event) => setDraft(event.target.value)}
      />
      <button type="submit" disabled={!draft.trim()}>
        Send
      </button>
    </form>
  );
}
