export type Role = "user" | "assistant";

export interface ChatMessage {
  id: number;
  role: Role;
  text: string;
}
