// Fake of Moddable's `Resource` (xs/platforms/*: the resources mcconfig linked into the build). This test build
// carries none: exists() is false and opening one throws, as Resource does for a name it does not have.
export default class Resource {
  static exists(_name: string): boolean {
    return false;
  }
  constructor(name: string) {
    throw new Error(`Resource: ${name} not found`);
  }
}
