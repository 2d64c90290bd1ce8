import { useState } from "react";
import { Composer } from "./components/Composer";
import { MessageList } from "./components/MessageList";
import type { ChatMessage } from "./types";

const GREETING: ChatMessage = {
  id: 0,
  role: "assistant",
  text: "Hello! Ask me anything.",
};

// Placeholder reply until the app is connected to a model.
function replyTo(text: string): string {
  return `You said: ${text}`;
}

export function App() {
  const [messages, setMessages] = useState<ChatMessage[]>([GREETING]);

  function send(text: string) {
    setMessages((previous) => {
      const nextId = previous.length;
      return [
        ...previous,
        { id: nextId, role: "user", text },
        { id: nextId + 1, role: "assistant", text: replyTo(text) },
      ];
    });
  }

  return (
    <main className="chat">
      <header className="chat__header">
        <h1>Chat</h1>
      </header>
      <MessageList messages={messages} />
      <Composer onSend={send} />
    </main>
  );
}
