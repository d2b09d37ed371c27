// Vite imports CSS for its side effect (the bundle's stylesheet).
declare module '*.css';
