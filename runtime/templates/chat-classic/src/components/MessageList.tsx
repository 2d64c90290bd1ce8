import { useEffect, useRef } from "react";
import type { ChatMessage } from "../types";

interface MessageListProps {
  messages: ChatMessage[];
}

export function MessageList({ messages }: MessageListProps) {
  const endRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    endRef.current?.scrollIntoView({ behavior: "smooth" });
  }, [messages]);

  return (
    <section className="chat__messages" aria-live="polite">
      {messages.map((message) => (
        <div key={message.id} className={`bubble bubble--${message.role}`}>
          {message.text}
        </div>
      ))}
      <div ref={endRef} />
    </section>
  );
}
